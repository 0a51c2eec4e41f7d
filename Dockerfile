# Multi-stage build of the `yrd` binary. The build stage needs only the Rust toolchain and the
# crate registry (protobuf is compiled in pure Rust, TLS is ring with a C compiler alone); the
# runtime stage is distroless: glibc and the binary, no shell, no package manager, non-root.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p yrd-gateway --bin yrd \
 && mkdir -p /out/data /out/pki

# Debian 12 (bookworm) like the build stage, so the binary's glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/yrd /usr/local/bin/yrd
# The data folder and the PKI folder belong to the image's non-root user (uid 65532), so that
# named volumes mounted there start out writable by it.
COPY --from=build --chown=65532:65532 /out/data /var/lib/yrd
COPY --from=build --chown=65532:65532 /out/pki /etc/yrd/pki
USER 65532:65532
WORKDIR /var/lib/yrd
EXPOSE 50051
ENTRYPOINT ["/usr/local/bin/yrd"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--data-dir", "/var/lib/yrd"]
