FROM busybox
ARG GREETING=hello
COPY <<EOF /etc/motd
$GREETING "world"
EOF
RUN <<EOT
echo one
echo two
EOT
