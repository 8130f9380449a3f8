FROM busybox
ADD https://example.com/x.tar.gz /x
ADD --chmod=644 --checksum=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef https://example.com/dl/ /dl/
ADD --keep-git-dir https://example.com/repo.git#v1:sub /src/
