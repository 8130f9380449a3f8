FROM busybox
ADD https://example.com/x.tar.gz /x
