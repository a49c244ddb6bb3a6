package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// message is what replicas send each other over the bus. Kind selects the
// handler; the other fields are for the handler to read as its kind
// defines them.
type message struct {
	Kind    string `json:"k"`
	From    string `json:"f,omitempty"` // the sending replica, set by publish and broadcast
	User    string `json:"u,omitempty"`
	Session string `json:"s,omitempty"`
	Gen     uint64 `json:"g,omitempty"`
	Text    string `json:"t,omitempty"`
	Data    []byte `json:"d,omitempty"`
	Age     int64  `json:"a,omitempty"` // milliseconds
}

// maxMessage bounds a message on the bus; a longer payload is refused by the
// sender and dropped by the receiver.
const maxMessage = 1 << 20

func encodeMessage(m message) ([]byte, error) {
	if m.Kind == "" {
		return nil, errors.New("redisstore: bus message without a kind")
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("redisstore: encoding a bus message: %w", err)
	}
	if len(b) > maxMessage {
		return nil, fmt.Errorf("redisstore: bus message of %d bytes, longer than %d", len(b), maxMessage)
	}
	return b, nil
}

func decodeMessage(p string) (message, error) {
	var m message
	if len(p) > maxMessage {
		return m, fmt.Errorf("redisstore: bus message of %d bytes, longer than %d", len(p), maxMessage)
	}
	if err := json.Unmarshal([]byte(p), &m); err != nil {
		return message{}, fmt.Errorf("redisstore: decoding a bus message: %w", err)
	}
	if m.Kind == "" {
		return message{}, errors.New("redisstore: bus message without a kind")
	}
	return m, nil
}

// publish sends msg to one replica's channel. It returns once Redis has
// taken the message; nil does not mean the replica got it (it may be dead
// or reconnecting). The decision the message announces must already be
// recorded in Redis.
func (s *Store) publish(ctx context.Context, replica string, msg message) error {
	return s.send(ctx, s.keys.node(replica), msg)
}

// broadcast sends msg to every replica of the project, this one included.
func (s *Store) broadcast(ctx context.Context, msg message) error {
	return s.send(ctx, s.keys.all(), msg)
}

func (s *Store) send(ctx context.Context, channel string, msg message) error {
	msg.From = s.replica
	b, err := encodeMessage(msg)
	if err != nil {
		return err
	}
	if err := s.client.Publish(ctx, channel, b).Err(); err != nil {
		return fmt.Errorf("redisstore: publishing %s: %w", msg.Kind, err)
	}
	return nil
}

// handle registers f for the messages of one kind, replacing an earlier
// handler of that kind. f runs on the Store's bus goroutine, one message at
// a time in the order received: it must not block (hand slow work to a
// goroutine of your own) and must not call handle.
func (s *Store) handle(kind string, f func(message)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == nil {
		delete(s.handlers, kind)
		return
	}
	s.handlers[kind] = f
}

// alive reports whether a replica's liveness key exists: it refreshed it in
// the last AliveTTL.
func (s *Store) alive(ctx context.Context, replica string) (bool, error) {
	n, err := s.client.Exists(ctx, s.keys.alive(replica)).Result()
	if err != nil {
		return false, fmt.Errorf("redisstore: liveness of replica %s: %w", replica, err)
	}
	return n == 1, nil
}

// run is the Store's bus goroutine: it subscribes, sets the liveness key,
// then dispatches messages and refreshes the key until Close.
func (s *Store) run() {
	defer s.wg.Done()
	ps := s.client.Subscribe(s.ctx) // no channel yet: no connection yet
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ps.Close()
		return
	}
	s.pubsub = ps
	s.mu.Unlock()
	defer ps.Close()

	wait := 50 * time.Millisecond
	for {
		err := s.subscribe(ps)
		if err == nil {
			break
		}
		if s.ctx.Err() != nil {
			return
		}
		s.logger.Warn("redisstore: subscribing to the bus", "err", err, "retry_in", wait)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
	// Read the subscription before anything else waits on Redis: a
	// subscriber that reads nothing stalls Redis's writes to it (miniredis
	// over a pipe stalls entirely).
	ch := ps.Channel(redis.WithChannelSize(1024))
	s.refresh()
	close(s.ready)

	tick := time.NewTicker(s.aliveRefresh)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case m, ok := <-ch:
			if !ok {
				return
			}
			s.dispatch(m.Payload)
		case <-tick.C:
			s.refresh()
		}
	}
}

// subscribe subscribes to this replica's channel and the project's, and
// waits for Redis to confirm both.
func (s *Store) subscribe(ps *redis.PubSub) error {
	node, all := s.keys.node(s.replica), s.keys.all()
	if err := ps.Subscribe(s.ctx, node, all); err != nil {
		return err
	}
	seen := map[string]bool{}
	for !seen[node] || !seen[all] {
		v, err := ps.ReceiveTimeout(s.ctx, 5*time.Second)
		if err != nil {
			return err
		}
		if sub, ok := v.(*redis.Subscription); ok && sub.Kind == "subscribe" {
			seen[sub.Channel] = true
		}
	}
	return nil
}

func (s *Store) dispatch(payload string) {
	m, err := decodeMessage(payload)
	if err != nil {
		s.logger.Warn("redisstore: dropped a bus message", "err", err)
		return
	}
	s.mu.Lock()
	f := s.handlers[m.Kind]
	s.mu.Unlock()
	if f == nil {
		s.logger.Debug("redisstore: bus message of a kind nobody handles", "kind", m.Kind, "from", m.From)
		return
	}
	f(m)
}

// refresh sets this replica's liveness key for aliveTTL.
func (s *Store) refresh() {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Second)
	err := s.client.Do(ctx, "SET", s.keys.alive(s.replica), s.replica, "PX", s.aliveTTL.Milliseconds()).Err()
	cancel()
	if err != nil && s.ctx.Err() == nil {
		s.logger.Warn("redisstore: refreshing the liveness key", "err", err)
	}
	if s.onRefresh != nil {
		s.onRefresh(err)
	}
}
