# syntax=docker/dockerfile:1
#
# aks-identity-audit container image.
#
#   docker build -t myregistry.azurecr.io/aks-identity-audit:0.1.0 .
#   docker run --rm myregistry.azurecr.io/aks-identity-audit:0.1.0 rules
#
# Templates and baselines are embedded in the binary: the runtime image holds only
# the binary, CA certificates (for Azure and SMTP over TLS) and glibc.
#
# The production image is built without the cargo feature `emulator`: the binary that
# holds Azure credentials has no HTTP server code (no axum, axum-server, rcgen), and
# `run --demo` / `emulator` are refused in it. A demo image, for trying the tool
# without Azure, adds the feature:
#
#   docker build --build-arg CARGO_FEATURES=emulator -t aks-identity-audit:demo .
#   docker run --rm aks-identity-audit:demo run --demo

############################ build ############################
FROM rust:1-bookworm AS build
# Empty: the production binary, without the emulator. `emulator`: the demo image.
ARG CARGO_FEATURES=""
WORKDIR /src
COPY . .
# The registry and target caches speed up rebuilds; --locked builds exactly Cargo.lock.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --no-default-features --features "$CARGO_FEATURES" \
      --bin aks-identity-audit \
 && install -D -m 0755 target/release/aks-identity-audit /out/aks-identity-audit \
 && mkdir -p /out/data

############################ runtime ##########################
# distroless "cc": glibc, libgcc, CA certificates, /etc/passwd with nonroot = 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="aks-identity-audit" \
      org.opencontainers.image.description="Audit the identities of AKS clusters and report to their owners" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/aks-identity-audit /usr/local/bin/aks-identity-audit
# History (--state) and reports; the Helm chart mounts a volume here.
COPY --from=build --chown=65532:65532 /out/data /var/lib/aks-identity-audit
WORKDIR /var/lib/aks-identity-audit
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/aks-identity-audit"]
CMD ["run"]
