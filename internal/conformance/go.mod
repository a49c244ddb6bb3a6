module github.com/tcconcurrency/sdk-go/internal/conformance

go 1.25

require (
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common v1.3.209
	github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/scf v1.3.101
)

replace github.com/tcconcurrency/sdk-go => ../..
