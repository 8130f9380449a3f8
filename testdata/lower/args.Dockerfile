# rbuild-test: build-arg=NAME=world label=built-by=rbuild
FROM busybox AS one
ARG NAME=nobody
ARG OTHER=x${NAME}
ENV NAME=env-$NAME
RUN echo $NAME $OTHER
ARG TARGETARCH
RUN echo ${TARGETARCH}
FROM one AS two
RUN echo again
EXPOSE 80 8000-8001/udp
USER 1000:1000
VOLUME /data
STOPSIGNAL SIGTERM
SHELL ["/bin/ash", "-c"]
CMD echo bye
HEALTHCHECK --interval=30s --retries=3 CMD wget -q localhost
ONBUILD RUN echo triggered
