package wire

// Hello is the first frame a client sends. Token is a secret: the type
// never appears in logs or errors.
type Hello struct {
	Type    string `json:"type"`
	V       int    `json:"v"`
	Session string `json:"session"`
	Token   string `json:"token"`
}

// Welcome answers an accepted hello; the Server writes it and the Go client
// reads it. Durations are milliseconds. Token is a secret.
type Welcome struct {
	Type          string `json:"type"`
	V             int    `json:"v"`
	Session       string `json:"session"`
	Token         string `json:"token"`
	Resumed       bool   `json:"resumed"`
	PingInterval  int64  `json:"pingInterval"`
	PingTimeout   int64  `json:"pingTimeout"`
	Grace         int64  `json:"grace"`
	ReloadGrace   int64  `json:"reloadGrace"`
	IdleThreshold int64  `json:"idleThreshold"`
}
