module github.com/docker/docker-gs-ping

go 1.19
