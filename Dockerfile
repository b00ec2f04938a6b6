# Build stage: the release binary.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked && strip target/release/nova-actions

# Runtime stage: the binary alone, as a non-root user, with the store on a volume.
FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/nova-actions nova-actions \
    && mkdir -p /var/lib/nova-actions/data /etc/nova-actions \
    && chown -R nova-actions /var/lib/nova-actions
COPY --from=build /src/target/release/nova-actions /usr/local/bin/nova-actions
COPY config.toml /etc/nova-actions/config.toml
USER nova-actions
WORKDIR /var/lib/nova-actions
VOLUME ["/var/lib/nova-actions/data"]
EXPOSE 8774
ENTRYPOINT ["nova-actions", "--config", "/etc/nova-actions/config.toml"]
CMD ["serve", "--listen", "0.0.0.0:8774", "--data-dir", "/var/lib/nova-actions/data"]
