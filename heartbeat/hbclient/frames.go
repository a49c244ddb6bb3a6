package hbclient

import (
	"encoding/json"
	"errors"

	"github.com/tcconcurrency/sdk-go/heartbeat"
	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
)

// The client's side of the wire protocol (package heartbeat's doc specifies
// it): the frames a Client writes, and every frame a server sends decoded
// into one struct.

// Frame types a Client writes or reads by name.
const (
	frameHello   = "hello"
	frameWelcome = "welcome"
	frameStream  = "stream" // version 2 only
)

// activityFrame is the activity frame in its canonical form, the one the
// Server recognises without a JSON decoder.
const activityFrame = `{"type":"activity"}`

// clientReadLimit bounds a server frame: at most a notice with
// heartbeat.MaxNoticeDataSize of data.
const clientReadLimit = 64 << 10

// streamFrame is the stream frame as the Client writes it.
type streamFrame struct {
	Type  string `json:"type"`
	State string `json:"state"`
	Code  int    `json:"code"`
}

// serverFrame is any frame a server sends: the welcome's fields and the
// notices'.
type serverFrame struct {
	wire.Welcome
	Position int             `json:"position"`
	Name     string          `json:"name"`
	Data     json.RawMessage `json:"data"`
	Times    int             `json:"times"`
	Reason   string          `json:"reason"`
}

func decodeServerFrame(data []byte) (serverFrame, error) {
	var f serverFrame
	if err := json.Unmarshal(data, &f); err != nil {
		return serverFrame{}, errors.New("heartbeat: server frame is not a valid JSON object")
	}
	if f.Type == "" {
		return serverFrame{}, errors.New(`heartbeat: server frame has no "type"`)
	}
	return f, nil
}

// notice converts a notice frame to the Notice handed to OnNotice.
func (f serverFrame) notice() heartbeat.Notice {
	return heartbeat.Notice{
		Kind:     heartbeat.NoticeKind(f.Type),
		Position: f.Position,
		Name:     f.Name,
		Data:     f.Data,
		Times:    f.Times,
		Reason:   f.Reason,
	}
}

// encode marshals a frame of the types above, which cannot fail to
// marshal; a failure is a bug.
func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("heartbeat: encoding a frame: " + err.Error())
	}
	return b
}

// negotiatedVersion maps the subprotocol the server selected to its
// protocol version; 0 if it selected neither of the Client's.
func negotiatedVersion(subprotocol string) int {
	if subprotocol == heartbeat.SubprotocolV2 {
		return heartbeat.ProtocolVersionV2
	}
	if subprotocol == heartbeat.Subprotocol {
		return heartbeat.ProtocolVersion
	}
	return 0
}
