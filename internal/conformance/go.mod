module github.com/tcconcurrency/sdk-go/internal/conformance

go 1.25

require (
	github.com/tcconcurrency/sdk-go v0.0.0-00010101000000-000000000000
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common v1.3.209
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/scf v1.3.101
)

require github.com/gorilla/websocket v1.5.3 // indirect

replace github.com/tcconcurrency/sdk-go => ../..
