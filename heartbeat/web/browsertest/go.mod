module github.com/tcconcurrency/sdk-go/heartbeat/web/browsertest

go 1.25

replace github.com/tcconcurrency/sdk-go => ../../..

require (
	github.com/chromedp/cdproto v0.159.0
	github.com/chromedp/chromedp v0.23.0
	github.com/tcconcurrency/sdk-go v0.0.0-00010101000000-000000000000
)

require (
	github.com/go-json-experiment/json v0.0.0-20260213210345-44df1a37e875 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
)
