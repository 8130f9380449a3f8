ARG BASE=busybox
ARG VERSION=1.0
FROM ${BASE}:latest AS build
ARG VERSION
RUN echo "$VERSION" > /v
WORKDIR src
WORKDIR sub
COPY --chown=1:1 --chmod=755 *.sh /bin/
FROM scratch
COPY --from=build /v /version
COPY --from=0 /app/src/sub /src/
LABEL org.example.v=$VERSION
ENTRYPOINT ["/bin/app"]
