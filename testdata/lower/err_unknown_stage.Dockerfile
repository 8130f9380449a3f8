FROM busybox AS a
COPY --from=later /x /y
FROM busybox AS later
