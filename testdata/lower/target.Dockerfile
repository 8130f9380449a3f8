# rbuild-test: target=Build no-cache-filter=build
FROM debian:bookworm-slim AS base
RUN apt-get update
FROM base AS build
RUN make
FROM busybox AS unused
RUN echo never
