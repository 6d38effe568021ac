# op-gossip in a container (used by docker-compose.yml). Build: docker build -t op-gossip .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY chains chains
RUN cargo build --release --locked --bin op-gossip

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl jq \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/op-gossip /usr/local/bin/op-gossip
COPY chains /chains
ENTRYPOINT ["op-gossip"]
