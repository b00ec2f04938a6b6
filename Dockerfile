# Build stage: the release binary.
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY examples ./examples
COPY benches ./benches
RUN cargo build --release --locked --bin nova-actions && strip target/release/nova-actions

# Runtime stage: the binary alone, as a non-root user, with the store on a volume.
FROM debian:bookworm-slim
# CA certificates: https to Keystone and to a mirrored Nova check against the system bundle.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /var/lib/nova-actions nova-actions \
    && mkdir -p /var/lib/nova-actions/data /etc/nova-actions \
    && chown -R nova-actions /var/lib/nova-actions
COPY --from=build /src/target/release/nova-actions /usr/local/bin/nova-actions
COPY config.toml /etc/nova-actions/config.toml
USER nova-actions
WORKDIR /var/lib/nova-actions
VOLUME ["/var/lib/nova-actions/data"]
EXPOSE 8774
# Configuration by environment: NOVA_ACTIONS__<SECTION>__<KEY>, e.g. NOVA_ACTIONS__AUTH__MODE.
ENV NOVA_ACTIONS__SERVER__LISTEN=0.0.0.0:8774 \
    NOVA_ACTIONS__STORAGE__DATA_DIR=/var/lib/nova-actions/data
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["nova-actions", "health", "--addr", "127.0.0.1:8774"]
ENTRYPOINT ["nova-actions", "--config", "/etc/nova-actions/config.toml"]
CMD ["serve"]
