# Multi-stage build of the `yrd` binary: the build stage needs only the Rust toolchain and the
# crate registry (protobuf is compiled in pure Rust), the runtime stage only the binary.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p yrd-gateway

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/yrd --create-home yrd
COPY --from=build /src/target/release/yrd /usr/local/bin/yrd
USER yrd
WORKDIR /var/lib/yrd
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/yrd"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--data-dir", "/var/lib/yrd"]
