# RUN --mount of every type, --security and a #! heredoc script.
FROM busybox AS deps
RUN echo dep > /dep

FROM busybox
WORKDIR /src
RUN --mount=type=bind,source=go.mod,target=go.mod \
    --mount=type=bind,from=deps,source=/dep,target=/dep \
    --mount=type=cache,target=/root/.cache,sharing=locked \
    --mount=type=tmpfs,target=/tmp,size=1m \
    --mount=type=secret,id=token,env=TOKEN \
    --mount=type=ssh \
    --security=insecure \
    cat go.mod /dep
RUN <<EOF
#!/bin/sh
echo script
EOF
