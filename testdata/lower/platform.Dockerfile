FROM --platform=$BUILDPLATFORM busybox AS build
ARG TARGETPLATFORM
ARG BUILDPLATFORM
RUN echo "building on $BUILDPLATFORM for $TARGETPLATFORM" > /out
FROM scratch
COPY --from=build /out /
CMD ["/out"]
ENTRYPOINT ["cat"]
