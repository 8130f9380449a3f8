FROM busybox
COPY https://example.com/x.tar.gz /x
