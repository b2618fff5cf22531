# syntax=docker/dockerfile:1
# Build: docker build -t sspr-exporter .
# The binary is built by scripts/build.sh, the same script CI runs.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG SSPR_VERSION=devel
RUN SSPR_VERSION=${SSPR_VERSION} scripts/build.sh /out/sspr-exporter

# A static binary needs no libc: distroless "static" adds CA certificates
# and a non-root user, nothing else.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sspr-exporter /usr/local/bin/sspr-exporter
COPY --from=build /src/config.example.toml /etc/sspr-exporter/config.example.toml
USER nonroot:nonroot
ENTRYPOINT ["/usr/local/bin/sspr-exporter"]
CMD ["run", "--config", "/etc/sspr-exporter/config.toml"]
