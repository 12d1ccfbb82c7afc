"""Health (docs/operations.md): GET /health/live answers while the process runs; GET
/health/ready and gRPC's grpc.health.v1.Health follow readiness (every model the coordinator
knows has a live replica: "" and shardwise.v1.Inference for the whole server, each model's name
for that model) through a shard's death and its return; server reflection lists the services.
Stubs for health and reflection are generated here from Debian's grpc-proto files. Nothing here
waits for a dead replica to leave the registry (its grace period): a dead replica stays listed,
out of rotation."""
import json
import os
import subprocess

from ops_support import (Processes, arguments, check, complete, free_ports, http, live_replicas,
                         wait_for)

GRPC_PROTO = "/usr/share/grpc-proto"
args = arguments()


def python_stubs(out):
    plugin = subprocess.run(["sh", "-c", "command -v grpc_python_plugin"], capture_output=True,
                            text=True).stdout.strip()
    subprocess.run(["protoc", f"--proto_path={GRPC_PROTO}", f"--python_out={out}",
                    f"--grpc_out={out}", f"--plugin=protoc-gen-grpc={plugin}",
                    f"{GRPC_PROTO}/grpc/health/v1/health.proto",
                    f"{GRPC_PROTO}/grpc/reflection/v1alpha/reflection.proto"], check=True)
    # The stubs live in grpc.health and grpc.reflection, inside the installed grpc package.
    import grpc
    grpc.__path__.append(os.path.join(out, "grpc"))


with Processes(args) as p:
    python_stubs(p.work)
    import grpc
    from grpc.health.v1 import health_pb2, health_pb2_grpc
    from grpc.reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
    from google.protobuf import descriptor_pb2

    SERVING = health_pb2.HealthCheckResponse.SERVING
    NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

    def health(address, service):
        """The status of `service`, or the gRPC status code's name when the call fails."""
        stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(address))
        try:
            return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        except grpc.RpcError as e:
            return e.code().name

    def reflected_services(address):
        stub = reflection_pb2_grpc.ServerReflectionStub(grpc.insecure_channel(address))
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        [response] = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        return sorted(s.name for s in response.list_services_response.service)

    def file_of_symbol(address, symbol):
        stub = reflection_pb2_grpc.ServerReflectionStub(grpc.insecure_channel(address))
        request = reflection_pb2.ServerReflectionRequest(file_containing_symbol=symbol)
        [response] = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        names = []
        for raw in response.file_descriptor_response.file_descriptor_proto:
            names.append(descriptor_pb2.FileDescriptorProto.FromString(raw).name)
        return names

    def ready(address):
        status, body = http(address, "/health/ready")
        return status, json.loads(body) if status else None

    grpc_port, http_port, shard_port, lonely_grpc, lonely_http = free_ports(5)
    grpc_address, http_address = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{http_port}"
    # An API key guards /v1/ and the Inference API, not the probes.
    p.coordinator("coordinator", grpc_port, http_port, "--api-key", "probe-secret",
                  "--missed-heartbeats", "2")
    wait_for(lambda: http(http_address, "/health/live")[0] == 200, 30, "/health/live answers")
    check(http(http_address, "/health/live") == (200, '{"status":"ok"}'), "/health/live: ok")
    status, body = ready(http_address)
    check(status == 503 and body == {"status": "unavailable", "models": {}},
          f"/health/ready with no model: 503 {body}")
    check(health(grpc_address, "") == NOT_SERVING, "gRPC health '': NOT_SERVING with no model")
    check(health(grpc_address, "stories260K") == "NOT_FOUND", "an unknown model: NOT_FOUND")

    services = reflected_services(grpc_address)
    check({"shardwise.v1.Inference", "shardwise.v1.Registry", "grpc.health.v1.Health"} <=
          set(services), f"reflection lists the services: {services}")
    check("shardwise/v1/inference.proto" in file_of_symbol(grpc_address, "shardwise.v1.Inference"),
          "reflection describes shardwise.v1.Inference from its .proto")

    p.shard_group("shard", 1, grpc_port, f"127.0.0.1:{shard_port}")
    wait_for(lambda: ready(http_address)[0] == 200, 120, "/health/ready turns 200")
    status, body = ready(http_address)
    check(body == {"status": "ok", "models": {"stories260K": {"live_replicas": 1}}},
          f"/health/ready names the model: {body}")
    wait_for(lambda: health(grpc_address, "") == SERVING, 10, "gRPC health '': SERVING")
    for service in ("shardwise.v1.Inference", "stories260K"):
        check(health(grpc_address, service) == SERVING, f"gRPC health {service!r}: SERVING")
    check(health(grpc_address, "llama-70b") == "NOT_FOUND", "a model never seen: NOT_FOUND")
    shard_address = f"127.0.0.1:{shard_port}"
    check(health(shard_address, "") == SERVING and health(shard_address, "stories260K") == SERVING,
          "the shard leader serves gRPC health too")
    check("shardwise.v1.Shard" in reflected_services(shard_address), "and reflection")

    # The shard dies: readiness follows within the missed heartbeats; liveness does not move.
    shard = p.started[-1][1]
    os.killpg(shard.pid, 9)
    shard.wait()
    wait_for(lambda: ready(http_address)[0] == 503, 30, "/health/ready turns 503")
    check(ready(http_address)[1]["models"] == {"stories260K": {"live_replicas": 0}},
          "the model is listed with no live replica")
    wait_for(lambda: health(grpc_address, "stories260K") == NOT_SERVING, 10,
             "gRPC health 'stories260K': NOT_SERVING")
    check(health(grpc_address, "") == NOT_SERVING, "gRPC health '': NOT_SERVING")
    check(http(http_address, "/health/live")[0] == 200, "/health/live stays 200")

    # It comes back: so does readiness.
    p.shard_group("shard-again", 1, grpc_port, f"127.0.0.1:{shard_port}")
    wait_for(lambda: ready(http_address)[0] == 200, 120, "/health/ready recovers")
    wait_for(lambda: health(grpc_address, "") == SERVING, 10, "gRPC health '' recovers")
    check(health(grpc_address, "stories260K") == SERVING, "gRPC health 'stories260K' recovers")

    # --models: ready only when each configured model has a live replica.
    p.coordinator("lonely", lonely_grpc, lonely_http, "--models", "stories260K", "llama-70b")
    lonely = f"127.0.0.1:{lonely_http}"
    wait_for(lambda: http(lonely, "/health/live")[0] == 200, 30, "a second coordinator starts")
    status, body = ready(lonely)
    check(status == 503 and body["models"] == {"llama-70b": {"live_replicas": 0},
                                               "stories260K": {"live_replicas": 0}},
          f"/health/ready lists the configured models: {body}")

    # Draining: SIGTERM turns the server NOT_SERVING before it goes.
    watch = health_pb2_grpc.HealthStub(grpc.insecure_channel(grpc_address)).Watch(
        health_pb2.HealthCheckRequest(service=""), timeout=30)
    check(next(watch).status == SERVING, "Watch '' starts SERVING")
    coordinator = p.started[0][1]
    coordinator.send_signal(15)
    try:
        seen = next(watch).status
    except grpc.RpcError as e:
        seen = e.code().name
    check(seen in (NOT_SERVING, "UNAVAILABLE"), f"on SIGTERM, Watch '' hears NOT_SERVING ({seen})")
    check(p.wait_exit(coordinator, 40) == 0, "and exits 0")

    # New coordinators on the same ports, each joined again by the live shard, serve and exit 0
    # on SIGTERM: gRPC's shutdown once raced the process's exit (a crash after main returned in
    # about 1 run in 8), so it is tried several times.
    for i in range(6):
        again = p.coordinator(f"again-{i}", grpc_port, http_port)
        wait_for(lambda: ready(http_address)[0] == 200, 60, f"coordinator {i + 2}: the shard is back")
        check(complete(http_address)[0] == 200, f"coordinator {i + 2} serves a completion")
        again.send_signal(15)
        code = p.wait_exit(again, 40)
        check(code == 0, f"coordinator {i + 2} exits 0 on SIGTERM (got {code})")
print("PASS")
