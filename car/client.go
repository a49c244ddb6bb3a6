package car

import (
	"context"

	"github.com/tcconcurrency/sdk-go/internal/retry"
	"github.com/tcconcurrency/sdk-go/internal/transport"
)

// Service facts.
const (
	Service         = "car"
	Version         = "2022-01-10"
	DefaultEndpoint = "https://car.tencentcloudapi.com"
)

// Client calls the CAR API. It is safe for concurrent use; make one and
// share it.
type Client struct {
	t *transport.Client
}

// NewClient returns a client for car.tencentcloudapi.com over HTTPS, with
// credentials from the environment or the profile file unless
// WithCredentials says otherwise.
func NewClient(opts ...Option) (*Client, error) {
	t, err := transport.New(transport.Config{
		Service:  Service,
		Version:  Version,
		Endpoint: DefaultEndpoint,
		Language: "en-US",
	}, transportOptions(opts)...)
	if err != nil {
		return nil, err
	}
	return &Client{t: t}, nil
}

// Call sends any CAR action: params is marshalled as the request's JSON
// parameters and the reply's Response object is decoded into out (a
// pointer; nil to discard). Use it for actions this package has no method
// for. Calls are retried as every CAR action is: safe to repeat.
func (c *Client) Call(ctx context.Context, action string, params, out any, opts ...CallOption) error {
	topts, err := transportCallOptions(action, opts)
	if err != nil {
		return err
	}
	return c.t.Call(ctx, action, params, out, topts...)
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.t.CloseIdleConnections() }

// retryBudget is the client's retry budget, which the session manager's
// release queue and queue head charge their retries to (nil: disabled).
func (c *Client) retryBudget() *retry.Budget { return c.t.Budget() }

// ApplyConcurrent locks a concurrency of the project for the user. Calling it
// again for a user that holds one is harmless; on ResourceNotFound.NoIdle
// ([CodeNoIdle]) every concurrency is busy.
func (c *Client) ApplyConcurrent(ctx context.Context, in *ApplyConcurrentInput, opts ...CallOption) (*ApplyConcurrentOutput, error) {
	return call[ApplyConcurrentOutput](ctx, c, "ApplyConcurrent", in, opts)
}

// CreateSession starts the cloud application on the user's locked
// concurrency and returns the ServerSession for the client's
// TCGSDK.start().
func (c *Client) CreateSession(ctx context.Context, in *CreateSessionInput, opts ...CallOption) (*CreateSessionOutput, error) {
	return call[CreateSessionOutput](ctx, c, "CreateSession", in, opts)
}

// DestroySession ends the user's session and releases the concurrency at
// once (after CAR's cleanup), instead of after the reconnect wait.
func (c *Client) DestroySession(ctx context.Context, in *DestroySessionInput, opts ...CallOption) (*DestroySessionOutput, error) {
	return call[DestroySessionOutput](ctx, c, "DestroySession", in, opts)
}

// DescribeConcurrentCount returns the total and running concurrencies, of
// one project or of the account. A nil input means the account.
func (c *Client) DescribeConcurrentCount(ctx context.Context, in *DescribeConcurrentCountInput, opts ...CallOption) (*DescribeConcurrentCountOutput, error) {
	if in == nil {
		in = &DescribeConcurrentCountInput{}
	}
	return call[DescribeConcurrentCountOutput](ctx, c, "DescribeConcurrentCount", in, opts)
}

// StartPublishStream starts pushing the user's session to Tencent CSS, with
// the UserId as the stream id.
func (c *Client) StartPublishStream(ctx context.Context, in *StartPublishStreamInput, opts ...CallOption) (*StartPublishStreamOutput, error) {
	return call[StartPublishStreamOutput](ctx, c, "StartPublishStream", in, opts)
}

// StartPublishStreamWithURL starts pushing the user's session to an RTMP
// URL of the caller's (billed separately).
func (c *Client) StartPublishStreamWithURL(ctx context.Context, in *StartPublishStreamWithURLInput, opts ...CallOption) (*StartPublishStreamWithURLOutput, error) {
	return call[StartPublishStreamWithURLOutput](ctx, c, "StartPublishStreamWithURL", in, opts)
}

// StopPublishStream stops the user's stream push.
func (c *Client) StopPublishStream(ctx context.Context, in *StopPublishStreamInput, opts ...CallOption) (*StopPublishStreamOutput, error) {
	return call[StopPublishStreamOutput](ctx, c, "StopPublishStream", in, opts)
}

// input is implemented by every request type: it names the first rule its
// value breaks, before anything is sent.
type input interface {
	validate() (field, rule string)
}

func call[Out, In any, PIn interface {
	*In
	input
}](ctx context.Context, c *Client, action string, in PIn, opts []CallOption) (*Out, error) {
	field, rule := "input", "must not be nil"
	if in != nil {
		field, rule = in.validate()
	}
	topts, err := transportCallOptions(action, opts)
	if err != nil {
		return nil, err
	}
	return transport.Do[Out](ctx, c.t, action, in, field, rule, topts)
}
