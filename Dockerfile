# syntax=docker/dockerfile:1
# Olive's container image: `olive` built in release mode on Debian 12 with the web app bundled in,
# run as a non-root user in a distroless image (glibc and CA certificates, no shell).
#
#   docker build -t olive .
#   docker run -p 8080:8080 -p 1935:1935 -v olive-data:/var/lib/olive olive serve --demo
#
# The dependency layer (cargo-chef's "cook") is rebuilt only when Cargo.toml/Cargo.lock change.

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /src

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# crates/web's build script bundles the front end with Node.js and npm; the thumbnails' JPEG encoder
# (MozJPEG) and OpenH264 use nasm's SIMD assembly. Debian's package versions
# are not pinned: the archive replaces them on every point release, which would break the build.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm nasm \
    && rm -rf /var/lib/apt/lists/*
COPY --from=planner /src/recipe.json recipe.json
# The patched crates must be in place before the dependencies are built.
COPY vendor vendor
RUN cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bin olive \
    && mkdir -p /out/data \
    && cp target/release/olive /out/olive

FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/olive /usr/local/bin/olive
COPY --from=builder --chown=65532:65532 /out/data /var/lib/olive
ENV OLIVE_HTTP_ADDR=0.0.0.0:8080 \
    OLIVE_RTMP_ADDR=0.0.0.0:1935 \
    OLIVE_DATA_DIR=/var/lib/olive \
    OLIVE_LOG_FORMAT=json
WORKDIR /var/lib/olive
# distroless's "nonroot" user, by number so the host can resolve it.
USER 65532:65532
EXPOSE 8080 1935
VOLUME ["/var/lib/olive"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/olive", "probe", "http://127.0.0.1:8080/livez"]
ENTRYPOINT ["/usr/local/bin/olive"]
CMD ["serve"]
