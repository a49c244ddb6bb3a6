module github.com/tcconcurrency/sdk-go/examples/replicas

go 1.25

require (
	github.com/alicebob/miniredis/v2 v2.40.0
	github.com/gorilla/websocket v1.5.3
	github.com/redis/go-redis/v9 v9.22.0
	github.com/tcconcurrency/sdk-go v0.0.0-00010101000000-000000000000
	github.com/tcconcurrency/sdk-go/car/redisstore v0.0.0-00010101000000-000000000000
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/yuin/gopher-lua v1.1.1 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)

replace (
	github.com/tcconcurrency/sdk-go => ../..
	github.com/tcconcurrency/sdk-go/car/redisstore => ../../car/redisstore
)
