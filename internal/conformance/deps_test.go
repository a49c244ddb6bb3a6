package conformance

// The modules this one pins; the tests import them.
import (
	_ "github.com/tcconcurrency/sdk-go/car"
	_ "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	_ "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/scf/v20180416"
)
