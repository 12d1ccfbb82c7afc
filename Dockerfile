# shardwise in a container, in two stages: build (Debian 12, scripts/install-deps.sh,
# scripts/build.sh), then a runtime image holding only the three binaries, the default model,
# example configs, the systemd units and the Debian packages of the binaries' libraries, put
# there by scripts/install-runtime.sh (tests/deploy/runtime_root_test.sh runs the same two
# steps into a debootstrapped Debian 12 root). docs/operations.md has the ports and options.
#
#   docker build --build-arg SHARDWISE_COMMIT=$(git rev-parse --short=12 HEAD) -t shardwise .
#   docker run -p 50051:50051 -p 8000:8000 shardwise          # the coordinator
#   docker run --entrypoint mpirun shardwise -np 2 shardwise-shard --tp 2 \
#     --coordinator COORDINATOR:50051 --listen 0.0.0.0:50061 --advertise THIS_HOST
#
# CUDA: build on NVIDIA's CUDA images (Ubuntu-based; the scripts use only apt and dpkg), where
# nvcc turns the CUDA backend on and the runtime stage gets the CUDA libraries' packages too:
#   docker build --build-arg BUILD_IMAGE=nvidia/cuda:13.0.1-devel-ubuntu24.04 \
#                --build-arg RUNTIME_IMAGE=nvidia/cuda:13.0.1-runtime-ubuntu24.04 -t shardwise:cuda .
ARG BUILD_IMAGE=debian:12
ARG RUNTIME_IMAGE=debian:12-slim

FROM ${BUILD_IMAGE} AS build
ARG SHARDWISE_COMMIT=
ENV DEBIAN_FRONTEND=noninteractive SHARDWISE_COMMIT=${SHARDWISE_COMMIT}
WORKDIR /src
COPY . .
RUN scripts/install-deps.sh && \
    scripts/build.sh /build -DSHARDWISE_BENCHMARKS=OFF -DBUILD_TESTING=OFF && \
    scripts/install-runtime.sh stage /build /stage

FROM ${RUNTIME_IMAGE}
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=build /stage/ /
COPY --from=build /src/scripts/install-runtime.sh /usr/local/share/shardwise/install-runtime.sh
RUN /usr/local/share/shardwise/install-runtime.sh packages / && \
    rm -rf /var/lib/apt/lists/* && \
    useradd --system --user-group --home-dir /var/lib/shardwise shardwise
USER shardwise
# gRPC (public API and shard registry), OpenAI-compatible HTTP; shard leaders listen on --listen.
EXPOSE 50051 8000
ENTRYPOINT ["/usr/local/bin/shardwise-coordinator"]
CMD ["--grpc", "0.0.0.0:50051", "--http", "0.0.0.0:8000", "--log-format", "json"]
