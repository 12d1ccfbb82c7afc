"""Ports and addresses (docs/operations.md): a second coordinator on a used gRPC or HTTP port,
and a second shard on a used --listen port, exit 1 at start with "address already in use"
instead of sharing the port; a shard listening on 0.0.0.0 registers this host's address toward
the coordinator, and --advertise is what registers when given."""
import json
import time

from ops_support import (Processes, arguments, check, complete, free_ports, http,
                         live_replicas, replicas, run, wait_for)

args = arguments()
grpc_port, http_port, other_grpc, other_http, shard_port, pool_port = free_ports(6)
coordinator_http = f"127.0.0.1:{http_port}"

with Processes(args) as p:
    p.coordinator("coordinator", grpc_port, http_port)
    wait_for(lambda: http(coordinator_http, "/health/live")[0] == 200, 30, "the coordinator starts")

    for name, ports, listener in [("same-grpc", (grpc_port, other_http), "gRPC"),
                                  ("same-http", (other_grpc, http_port), "HTTP")]:
        second = p.coordinator(name, *ports)
        code = p.wait_exit(second, 30)
        log = p.log(name)
        check(code == 1 and "address already in use" in log and listener in log,
              f"a second coordinator on the {listener} port exits 1 ({code}): "
              f"{log.strip().splitlines()[-1] if log.strip() else ''}")

    # Listening on every interface: the coordinator is told an address it can dial.
    p.shard_group("wildcard", 1, grpc_port, f"0.0.0.0:{shard_port}")
    wait_for(lambda: live_replicas(coordinator_http), 120, "the 0.0.0.0 shard registers")
    [replica] = replicas(coordinator_http)
    check(replica["address"] == f"127.0.0.1:{shard_port}",
          f"--listen 0.0.0.0 registers the address toward the coordinator: {replica['address']}")
    status, body = complete(coordinator_http)
    check(status == 200, f"a completion through it: {status} {body[:200]}")

    second_shard = p.shard_group("same-listen", 1, grpc_port, f"127.0.0.1:{shard_port}")
    code = p.wait_exit(second_shard, 60)
    log = p.log("same-listen")
    check(code not in (0, None) and "address already in use" in log,
          f"a second shard on a used --listen port exits non-zero ({code})")
    check("loading" not in log, "it fails before loading the model")
    time.sleep(2)  # the symptom was re-registration every 1-2 s
    now = replicas(coordinator_http)
    check(len(now) == 1 and now[0]["address"] == replica["address"] and now[0]["live"],
          f"the first shard stays the one replica: {json.dumps(now)}")

    # --advertise: a pool of two registers localhost:PORT and localhost:PORT+1.
    p.shard_group("advertised", 2, grpc_port, f"127.0.0.1:{pool_port}", "--advertise",
                  f"localhost:{pool_port}")
    wait_for(lambda: len(live_replicas(coordinator_http)) == 3, 120, "the pool registers")
    addresses = sorted(r["address"] for r in live_replicas(coordinator_http))
    check(addresses == sorted([f"127.0.0.1:{shard_port}", f"localhost:{pool_port}",
                               f"localhost:{pool_port + 1}"]),
          f"--advertise is what registers: {addresses}")
    p.stop(p.started[[n for n, _ in p.started].index("wildcard")][1])
    wait_for(lambda: len(live_replicas(coordinator_http)) == 2, 30, "the first shard leaves")
    for _ in range(4):
        status, body = complete(coordinator_http)
        check(status == 200, f"completions over the advertised addresses: {status}")

    code, _, err = run([p.binary("shardwise-shard"), "--coordinator", f"127.0.0.1:{grpc_port}",
                        "--listen", f"127.0.0.1:{other_grpc}", "--advertise", "[::1"])
    check(code == 2 and "closing ']'" in err, f"a malformed --advertise is a usage error: {err}")
    code, _, err = run([p.binary("shardwise-shard"), "--coordinator", f"127.0.0.1:{grpc_port}",
                        "--listen", "127.0.0.1"])
    check(code == 2 and "HOST:PORT" in err, f"--listen without a port is a usage error: {err}")
print("PASS")
