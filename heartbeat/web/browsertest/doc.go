// Package browsertest runs the heartbeat's browser client, its TCGSDK glue
// and the web demo (examples/webdemo) in real Chromium, driven by
// chromedp, against the CAR reference server and a car.SessionManager. It
// is a separate module so that the SDK does not depend on chromedp.
//
//	cd heartbeat/web/browsertest && go test ./...
//
// It needs Chromium (Debian: apt-get install -y chromium; or set CHROMIUM
// to its path). Without it, every test skips and says so.
package browsertest
