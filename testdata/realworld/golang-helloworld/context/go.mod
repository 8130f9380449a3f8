module github.com/GoogleCloudPlatform/golang-samples/run/helloworld

go 1.19
