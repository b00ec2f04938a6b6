"""Run many real OpenStack client invocations with one Python start-up.

Reads a JSON list of runs on stdin and prints a JSON list of results on stdout, one per run, in
order. Each run is executed in a child process forked from this one after the clients' modules are
imported (the ~1.5 s that every `openstack` or `nova` invocation spends importing is paid once):
the child sets its environment, points its file descriptors 1 and 2 at files of its own and calls
the very entry point the console script calls (`openstackclient.shell:main`,
`novaclient.shell:main`), then exits with its status. So each run sees a fresh process state, as a
separate `openstack ...` command would.

A run is {"tool": "openstack" | "nova" | "sdk", "argv": [...], "env": {...}}:
  - openstack / nova: argv as given after the command name; env is set on top of this process's.
  - sdk: argv is a list of calls made with openstacksdk in that one child, each
    {"cloud": NAME, "call": "find_server", "server": NAME_OR_ID, "all_projects": bool,
     "then": "server_actions" | "get_server_action", "request_id": ...}
    or {"cloud": NAME, "call": "server_actions" | "get_server_action", "server": ID, ...};
    the child prints one JSON line per call: {"rows": [...]} / {"row": {...}} or
    {"error": EXCEPTION_CLASS, "message": str(exception)}.
A result is {"exit": N, "stdout": TEXT, "stderr": TEXT}.

Usage: $VENV/bin/python batch.py < runs.json
"""

import json
import os
import sys
import tempfile

import novaclient.shell  # noqa: F401  (imported before forking: that is the point)
import openstack
import openstack.compute.v2._proxy  # noqa: F401
import openstackclient.compute.v2.server_event  # noqa: F401
import openstackclient.shell


def _sdk(calls):
    conns = {}
    for c in calls:
        try:
            conn = conns.get(c["cloud"])
            if conn is None:
                conn = conns[c["cloud"]] = openstack.connect(cloud=c["cloud"])
            compute = conn.compute
            server = c["server"]
            then = c.get("then")
            if c["call"] == "find_server":
                server = compute.find_server(
                    c["server"], ignore_missing=False, all_projects=c.get("all_projects", False)
                )
            else:
                then = c["call"]
            if then == "server_actions":
                out = {"rows": [a.to_dict(computed=False) for a in compute.server_actions(server)]}
            elif then == "get_server_action":
                action = compute.get_server_action(c["request_id"], server, ignore_missing=False)
                out = {"row": action.to_dict(computed=False)}
            else:
                out = {"server": {"id": server.id, "name": server.name}}
        except Exception as e:  # the client's own error is the result
            out = {"error": type(e).__name__, "message": str(e)}
        print(json.dumps(out, sort_keys=True, default=str), flush=True)
    return 0


def _child(run, out_path, err_path):
    os.environ.update(run.get("env", {}))
    for fd, path in ((1, out_path), (2, err_path)):
        f = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(f, fd)
        os.close(f)
    tool = run["tool"]
    argv = list(run.get("argv", []))
    sys.argv = [tool] + argv
    code = 0
    try:
        if tool == "openstack":
            code = openstackclient.shell.main(argv)
        elif tool == "nova":
            code = novaclient.shell.main(argv)
        elif tool == "sdk":
            code = _sdk(argv)
        else:
            print(f"batch.py: unknown tool {tool!r}", file=sys.stderr)
            code = 2
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException as e:  # what the console script would show: a traceback, exit 1
        import traceback

        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code or 0)


def main():
    runs = json.load(sys.stdin)
    results = []
    with tempfile.TemporaryDirectory(prefix="nova-actions-clients-") as tmp:
        for i, run in enumerate(runs):
            out_path = os.path.join(tmp, f"{i}.out")
            err_path = os.path.join(tmp, f"{i}.err")
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _child(run, out_path, err_path)
            _, status = os.waitpid(pid, 0)
            with open(out_path, encoding="utf-8", errors="replace") as f:
                out = f.read()
            with open(err_path, encoding="utf-8", errors="replace") as f:
                err = f.read()
            results.append({"exit": os.waitstatus_to_exitcode(status), "stdout": out, "stderr": err})
    json.dump(results, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
