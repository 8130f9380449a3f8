FROM busybox AS base
ONBUILD RUN echo from-trigger
ONBUILD ENV T=1
FROM base
RUN echo main $T
