package scftest

import (
	"time"

	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// The asynchronous retry settings: GetFunctionEventInvokeConfig and
// UpdateFunctionEventInvokeConfig.

func (s *Server) getEventInvokeConfig() regionalHandler {
	return onFunction(s, nil, func(_ *getEventInvokeConfigIn, fn *function) (any, *apiserver.Error) {
		n, ttl := int64(fn.retryNum), int64(fn.msgTTL/time.Second)
		return eventInvokeConfigOut{AsyncTriggerConfig: wireAsyncTriggerConfig{RetryConfig: []wireRetryConfig{{RetryNum: &n}}, MsgTTL: &ttl}}, nil
	})
}

// checkRetryConfig validates UpdateFunctionEventInvokeConfig's settings;
// retry is the new RetryNum, -1 when it is not set.
func checkRetryConfig(in *updateEventInvokeConfigIn) (retry int, e *apiserver.Error) {
	if in.AsyncTriggerConfig == nil {
		return -1, apiserver.Errorf("MissingParameter", "the parameter `AsyncTriggerConfig` is required")
	}
	c := in.AsyncTriggerConfig
	retry = -1
	if len(c.RetryConfig) > 0 && c.RetryConfig[0].RetryNum != nil {
		if n := *c.RetryConfig[0].RetryNum; n < 0 || n > defaultRetryNum {
			return -1, apiserver.Errorf("LimitExceeded.RetryNum", "RetryNum %d must be 0–%d", n, defaultRetryNum)
		}
		retry = int(*c.RetryConfig[0].RetryNum)
	}
	if c.MsgTTL != nil && (*c.MsgTTL < 60 || *c.MsgTTL > int64(defaultMsgTTL/time.Second)) {
		return -1, apiserver.Errorf("LimitExceeded.MsgTTL", "MsgTTL %d s must be 60–21600", *c.MsgTTL)
	}
	return retry, nil
}

func (s *Server) updateEventInvokeConfig() regionalHandler {
	return onParsed(s, checkRetryConfig, func(in *updateEventInvokeConfigIn, retry int, fn *function) (any, *apiserver.Error) {
		var ttl time.Duration
		if t := in.AsyncTriggerConfig.MsgTTL; t != nil {
			ttl = time.Duration(*t) * time.Second
		}
		s.model.setAsyncRetry(fn, retry, ttl)
		return nil, nil
	})
}
