# rbuild-test: target=nope
FROM busybox
