package scf

import (
	"context"

	"github.com/tcconcurrency/sdk-go/internal/retry"
	"github.com/tcconcurrency/sdk-go/internal/transport"
)

// Service facts.
const (
	Service         = "scf"
	Version         = "2018-04-16"
	DefaultEndpoint = "https://scf.tencentcloudapi.com"
)

// Client calls the SCF API. It is safe for concurrent use; make one and
// share it.
type Client struct {
	t *transport.Client
}

// NewClient returns a client for scf.tencentcloudapi.com over HTTPS, with
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

// notIdempotentAction reports the actions a retry could repeat with an
// effect: an invocation runs the function again, a publish makes another
// version, a create fails with ResourceInUse on the second attempt. It is
// the one list: Call and the typed methods (through call) both consult it;
// only UpdateFunctionConfiguration decides per request (Publish).
func notIdempotentAction(action string) bool {
	switch action {
	case "Invoke", "InvokeFunction", "PublishVersion", "PublishLayerVersion", "CreateFunction",
		"CreateAlias", "CreateTrigger", "CreateNamespace", "CopyFunction", "CreateCustomDomain":
		return true
	}
	return false
}

// Call sends any SCF action: params is marshalled as the request's JSON
// parameters and the reply's Response object is decoded into out (a
// pointer; nil to discard). Use it for actions this package has no method
// for. Calls are retried on throttling, 5xx and network errors, except the
// actions that must not run twice (Invoke, InvokeFunction, PublishVersion,
// Create…), which are retried only when the server cannot have acted
// (RequestLimitExceeded, a failed dial).
func (c *Client) Call(ctx context.Context, action string, params, out any, opts ...CallOption) error {
	if notIdempotentAction(action) {
		opts = notIdempotent(opts)
	}
	topts, err := transportCallOptions(action, opts)
	if err != nil {
		return err
	}
	return c.t.Call(ctx, action, params, out, topts...)
}

// CloseIdleConnections closes the client's idle keep-alive connections.
func (c *Client) CloseIdleConnections() { c.t.CloseIdleConnections() }

// retryBudget is the client's retry budget, which the Invoker charges its
// own retries to (nil: disabled).
func (c *Client) retryBudget() *retry.Budget { return c.t.Budget() }

func notIdempotent(opts []CallOption) []CallOption {
	return append(opts[:len(opts):len(opts)], func(c *callConfig) error {
		c.opts = append(c.opts, transport.NotIdempotent())
		return nil
	})
}

// PutReservedConcurrencyConfig sets the function's reserved quota (MB). 0
// disables the function; see [Client.DeleteReservedConcurrencyConfig] to
// give the quota back to the shared pool instead.
func (c *Client) PutReservedConcurrencyConfig(ctx context.Context, in *PutReservedConcurrencyConfigInput, opts ...CallOption) (*PutReservedConcurrencyConfigOutput, error) {
	return call[PutReservedConcurrencyConfigOutput](ctx, c, "PutReservedConcurrencyConfig", in, opts)
}

// GetReservedConcurrencyConfig returns the function's reserved quota, nil
// when none is set.
func (c *Client) GetReservedConcurrencyConfig(ctx context.Context, in *GetReservedConcurrencyConfigInput, opts ...CallOption) (*GetReservedConcurrencyConfigOutput, error) {
	return call[GetReservedConcurrencyConfigOutput](ctx, c, "GetReservedConcurrencyConfig", in, opts)
}

// DeleteReservedConcurrencyConfig removes the function's reservation: it
// draws on the shared pool again.
func (c *Client) DeleteReservedConcurrencyConfig(ctx context.Context, in *DeleteReservedConcurrencyConfigInput, opts ...CallOption) (*DeleteReservedConcurrencyConfigOutput, error) {
	return call[DeleteReservedConcurrencyConfigOutput](ctx, c, "DeleteReservedConcurrencyConfig", in, opts)
}

// PutProvisionedConcurrencyConfig sets a published version's provisioned
// concurrency. It returns once the setting is accepted; instances then
// start at 100 per minute, and [Client.WaitProvisionedConcurrencyReady]
// waits for them.
func (c *Client) PutProvisionedConcurrencyConfig(ctx context.Context, in *PutProvisionedConcurrencyConfigInput, opts ...CallOption) (*PutProvisionedConcurrencyConfigOutput, error) {
	return call[PutProvisionedConcurrencyConfigOutput](ctx, c, "PutProvisionedConcurrencyConfig", in, opts)
}

// GetProvisionedConcurrencyConfig returns the provisioned concurrency of one
// version or of all.
func (c *Client) GetProvisionedConcurrencyConfig(ctx context.Context, in *GetProvisionedConcurrencyConfigInput, opts ...CallOption) (*GetProvisionedConcurrencyConfigOutput, error) {
	return call[GetProvisionedConcurrencyConfigOutput](ctx, c, "GetProvisionedConcurrencyConfig", in, opts)
}

// DeleteProvisionedConcurrencyConfig removes a version's provisioned
// concurrency.
func (c *Client) DeleteProvisionedConcurrencyConfig(ctx context.Context, in *DeleteProvisionedConcurrencyConfigInput, opts ...CallOption) (*DeleteProvisionedConcurrencyConfigOutput, error) {
	return call[DeleteProvisionedConcurrencyConfigOutput](ctx, c, "DeleteProvisionedConcurrencyConfig", in, opts)
}

// PutTotalConcurrencyConfig sets the account's quota in the region (MB).
func (c *Client) PutTotalConcurrencyConfig(ctx context.Context, in *PutTotalConcurrencyConfigInput, opts ...CallOption) (*PutTotalConcurrencyConfigOutput, error) {
	return call[PutTotalConcurrencyConfigOutput](ctx, c, "PutTotalConcurrencyConfig", in, opts)
}

// GetAccount returns the account's quota, allocations and limits in the
// region. The input has no fields; nil is fine.
func (c *Client) GetAccount(ctx context.Context, in *GetAccountInput, opts ...CallOption) (*GetAccountOutput, error) {
	if in == nil {
		in = &GetAccountInput{}
	}
	return call[GetAccountOutput](ctx, c, "GetAccount", in, opts)
}

// Invoke runs a function: synchronously (the default), returning its
// Result, or asynchronously (InvocationEvent), returning at once with
// only Result.FunctionRequestId. A failed synchronous execution is a
// *[FunctionError]. The call is never retried once it may have reached the
// server.
func (c *Client) Invoke(ctx context.Context, in *InvokeInput, opts ...CallOption) (*InvokeOutput, error) {
	out, err := call[InvokeOutput](ctx, c, "Invoke", in, opts)
	if in == nil {
		return nil, err
	}
	var res *Result
	var reqID string
	if out != nil {
		res, reqID = &out.Result, out.RequestId
	}
	if err := invokeError("Invoke", in.FunctionName, in.Qualifier, res, reqID, err); err != nil {
		return nil, err
	}
	return out, nil
}

// InvokeFunction runs a function synchronously and returns its Result. A
// failed execution, or an exhausted quota or unknown qualifier (which
// InvokeFunction reports as API errors), is a *[FunctionError]. The call is
// never retried once it may have reached the server.
func (c *Client) InvokeFunction(ctx context.Context, in *InvokeFunctionInput, opts ...CallOption) (*InvokeFunctionOutput, error) {
	out, err := call[InvokeFunctionOutput](ctx, c, "InvokeFunction", in, opts)
	if in == nil {
		return nil, err
	}
	var res *Result
	var reqID string
	if out != nil {
		res, reqID = &out.Result, out.RequestId
	}
	if err := invokeError("InvokeFunction", in.FunctionName, in.Qualifier, res, reqID, err); err != nil {
		return nil, err
	}
	return out, nil
}

// GetRequestStatus returns the status of an execution, e.g. of an
// asynchronous event.
func (c *Client) GetRequestStatus(ctx context.Context, in *GetRequestStatusInput, opts ...CallOption) (*GetRequestStatusOutput, error) {
	return call[GetRequestStatusOutput](ctx, c, "GetRequestStatus", in, opts)
}

// CreateFunction creates a function. It is not retried once it may have
// reached the server (a repeat would fail with ResourceInUse.Function).
func (c *Client) CreateFunction(ctx context.Context, in *CreateFunctionInput, opts ...CallOption) (*CreateFunctionOutput, error) {
	return call[CreateFunctionOutput](ctx, c, "CreateFunction", in, opts)
}

// GetFunction describes a function version.
func (c *Client) GetFunction(ctx context.Context, in *GetFunctionInput, opts ...CallOption) (*GetFunctionOutput, error) {
	return call[GetFunctionOutput](ctx, c, "GetFunction", in, opts)
}

// UpdateFunctionConfiguration changes $LATEST's settings, such as
// MemorySize, Timeout or InstanceConcurrencyConfig.
func (c *Client) UpdateFunctionConfiguration(ctx context.Context, in *UpdateFunctionConfigurationInput, opts ...CallOption) (*UpdateFunctionConfigurationOutput, error) {
	opt := opts
	if in != nil && in.Publish == EnableTrue {
		opt = notIdempotent(opts)
	}
	return call[UpdateFunctionConfigurationOutput](ctx, c, "UpdateFunctionConfiguration", in, opt)
}

// PublishVersion publishes $LATEST as a new version, the only kind that can
// hold provisioned concurrency. It is not retried once it may have reached
// the server (a repeat would publish twice).
func (c *Client) PublishVersion(ctx context.Context, in *PublishVersionInput, opts ...CallOption) (*PublishVersionOutput, error) {
	return call[PublishVersionOutput](ctx, c, "PublishVersion", in, opts)
}

// ListFunctions returns one page of functions, with their reserved and
// provisioned memory. A nil input means the first page of the default
// namespace.
func (c *Client) ListFunctions(ctx context.Context, in *ListFunctionsInput, opts ...CallOption) (*ListFunctionsOutput, error) {
	if in == nil {
		in = &ListFunctionsInput{}
	}
	return call[ListFunctionsOutput](ctx, c, "ListFunctions", in, opts)
}

// DeleteFunction deletes a function or one version.
func (c *Client) DeleteFunction(ctx context.Context, in *DeleteFunctionInput, opts ...CallOption) (*DeleteFunctionOutput, error) {
	return call[DeleteFunctionOutput](ctx, c, "DeleteFunction", in, opts)
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
	if notIdempotentAction(action) {
		opts = notIdempotent(opts)
	}
	topts, err := transportCallOptions(action, opts)
	if err != nil {
		return nil, err
	}
	return transport.Do[Out](ctx, c.t, action, in, field, rule, topts)
}
