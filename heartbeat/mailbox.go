package heartbeat

import (
	"sync"

	"github.com/tcconcurrency/sdk-go/heartbeat/internal/wire"
)

// mailbox queues the callbacks of one server session (see wire.Mailbox);
// the Server's mutex guards it.
type mailbox struct{ wire.Mailbox }

func (m *mailbox) post(fn func()) (start bool) { return m.Post(fn) }
func (m *mailbox) drop()                       { m.Drop() }
func (m *mailbox) drain(mu sync.Locker)        { m.Drain(mu) }
func (m *mailbox) idle() bool                  { return m.Idle() }
