package cartest

import (
	"context"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/tcconcurrency/sdk-go/car"
	"github.com/tcconcurrency/sdk-go/internal/apiserver"
)

// isAction reports one of the seven actions of CAR 2022-01-10.
func isAction(name string) bool {
	switch name {
	case "ApplyConcurrent", "CreateSession", "DestroySession", "DescribeConcurrentCount",
		"StartPublishStream", "StartPublishStreamWithURL", "StopPublishStream":
		return true
	}
	return false
}

// defaultRate is an action's documented rate limit, per second.
func defaultRate(action string) int {
	switch action {
	case "ApplyConcurrent", "CreateSession", "DestroySession":
		return 100
	}
	return 20
}

// pushDomain stands for the account's CSS push domain in Push.URL.
const pushDomain = "push.cartest.invalid"

// Request bodies, field for field as the API defines them. Decoding is
// strict: a field that is not here is UnknownParameter.
type (
	applyConcurrentRequest struct {
		UserId               string //nolint:revive // the API's spelling
		UserIp               string //nolint:revive
		ProjectId            string //nolint:revive
		ApplicationVersionId string //nolint:revive
		ApplicationId        string //nolint:revive
	}
	createSessionRequest struct {
		UserId                string //nolint:revive
		UserIp                string //nolint:revive
		ClientSession         string
		RunMode               string
		ApplicationParameters string
		HostUserId            string //nolint:revive
		Role                  string
	}
	userRequest struct {
		UserId string //nolint:revive
	}
	describeConcurrentCountRequest struct {
		ProjectId           string //nolint:revive
		ApplicationCategory string
	}
	startPublishStreamRequest struct {
		UserId            string //nolint:revive
		PublishStreamArgs string
	}
	startPublishStreamWithURLRequest struct {
		UserId           string //nolint:revive
		PublishStreamURL string
	}
	countResponse struct {
		Total   uint64
		Running uint64
	}
	createSessionResponse struct {
		ServerSession string
	}
)

func (s *Server) actions() []apiserver.Action {
	perUser := func(name string, h apiserver.Handler) apiserver.Action {
		return apiserver.Action{Name: name, Handle: h, HandlesLatency: true}
	}
	return []apiserver.Action{
		perUser("ApplyConcurrent", s.applyConcurrent),
		perUser("CreateSession", s.createSession),
		perUser("DestroySession", s.destroySession),
		{Name: "DescribeConcurrentCount", Handle: s.describeConcurrentCount},
		perUser("StartPublishStream", s.startPublishStream),
		perUser("StartPublishStreamWithURL", s.startPublishStreamWithURL),
		perUser("StopPublishStream", s.stopPublishStream),
	}
}

// forUser runs op for one user: a second call for the same user while one
// is in progress (an injected latency included) answers
// FailedOperation.SlowDown, as CAR does. op runs under the server's lock,
// with the model settled at the current model time; the streams it returns
// are closed after the lock is released, before the answer is sent.
func (s *Server) forUser(ctx context.Context, req *apiserver.Request, user string, op func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error)) (any, error) {
	s.mu.Lock()
	if _, busy := s.inflight[user]; busy {
		s.mu.Unlock()
		return nil, apiserver.Errorf(car.CodeSlowDown, "a request for UserId %q is still being processed; retry later", clip(user))
	}
	if req.Latency > 0 {
		// The request stays in progress through its injected latency;
		// without one it is a single critical section, and nothing can
		// overlap it.
		s.inflight[user] = struct{}{}
		s.mu.Unlock()
		defer func() {
			s.mu.Lock()
			delete(s.inflight, user)
			s.mu.Unlock()
		}()
		if !req.Delay(ctx) {
			return nil, apiserver.Errorf(car.CodeFailedOperation, "the request was abandoned: the client went away or the server is closing")
		}
		s.mu.Lock()
	}
	now := s.clock.Now()
	s.model.settle(now)
	out, orders, apiErr := op(now, cause{action: req.Action, requestID: req.RequestId})
	s.mu.Unlock()
	for _, o := range orders {
		o.stream.close(o.code, o.reason)
	}
	if apiErr != nil {
		return nil, apiErr
	}
	return out, nil
}

func (s *Server) applyConcurrent(ctx context.Context, req *apiserver.Request) (any, error) {
	var in applyConcurrentRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId, "UserIp", in.UserIp, "ProjectId", in.ProjectId); err != nil {
		return nil, err
	}
	if err := checkIP(in.UserIp); err != nil {
		return nil, err
	}
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		return nil, nil, s.model.apply(now, cs, in.UserId, in.UserIp, in.ProjectId)
	})
}

func (s *Server) createSession(ctx context.Context, req *apiserver.Request) (any, error) {
	var in createSessionRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId, "UserIp", in.UserIp); err != nil {
		return nil, err
	}
	if err := checkIP(in.UserIp); err != nil {
		return nil, err
	}
	switch in.RunMode {
	case car.RunModeDefault, car.RunModeRunWithoutClient:
	default:
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `RunMode` must be empty or RunWithoutClient, got %q", clip(in.RunMode))
	}
	switch in.Role {
	case "", car.RolePlayer, car.RoleViewer:
	default:
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `Role` must be Player or Viewer, got %q", clip(in.Role))
	}
	if in.Role != "" && in.HostUserId == "" {
		return nil, apiserver.Errorf(car.CodeMissingParameter, "the parameter `HostUserId` is required when `Role` is set (multiplayer)")
	}
	if in.HostUserId != "" && in.HostUserId != in.UserId {
		return nil, apiserver.Errorf("UnsupportedOperation", "the parameter `HostUserId` names another user: joining a multiplayer room is not modelled by the reference server (a room owner passes its own UserId)")
	}
	host := req.HTTP.Host
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		c, orders, err := s.model.create(now, cs, in.UserId, in.UserIp, in.RunMode, in.ApplicationParameters)
		if err != nil {
			return nil, nil, err
		}
		return createSessionResponse{ServerSession: s.sessions.encode(host, s.streamPath, c.token, c.id)}, orders, nil
	})
}

func (s *Server) destroySession(ctx context.Context, req *apiserver.Request) (any, error) {
	var in userRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId); err != nil {
		return nil, err
	}
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		return nil, s.model.destroy(now, cs, in.UserId), nil
	})
}

func (s *Server) describeConcurrentCount(_ context.Context, req *apiserver.Request) (any, error) {
	var in describeConcurrentCountRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	switch in.ApplicationCategory {
	case "", car.ApplicationCategoryDesktop, car.ApplicationCategoryMobile:
	default:
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `ApplicationCategory` must be DESKTOP or MOBILE, got %q", clip(in.ApplicationCategory))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model.settle(s.clock.Now())
	total, running, err := s.model.count(in.ProjectId)
	if err != nil {
		return nil, err
	}
	return countResponse{Total: total, Running: running}, nil
}

func (s *Server) startPublishStream(ctx context.Context, req *apiserver.Request) (any, error) {
	var in startPublishStreamRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId); err != nil {
		return nil, err
	}
	if _, err := url.ParseQuery(in.PublishStreamArgs); err != nil || strings.ContainsAny(in.PublishStreamArgs, "?# ") {
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `PublishStreamArgs` must be URL query arguments such as bar=1&foo=2, got %q", clip(in.PublishStreamArgs))
	}
	u := url.URL{Scheme: "rtmp", Host: pushDomain, Path: "/live/" + in.UserId, RawQuery: in.PublishStreamArgs}
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		return nil, nil, s.model.startPush(now, cs, in.UserId, Push{URL: u.String()})
	})
}

func (s *Server) startPublishStreamWithURL(ctx context.Context, req *apiserver.Request) (any, error) {
	var in startPublishStreamWithURLRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId, "PublishStreamURL", in.PublishStreamURL); err != nil {
		return nil, err
	}
	if u, err := url.Parse(in.PublishStreamURL); err != nil || u.Scheme != "rtmp" || u.Host == "" {
		return nil, apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `PublishStreamURL` must be an rtmp:// URL with a host (only RTMP is supported), got %q", clip(in.PublishStreamURL))
	}
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		return nil, nil, s.model.startPush(now, cs, in.UserId, Push{URL: in.PublishStreamURL, WithURL: true})
	})
}

func (s *Server) stopPublishStream(ctx context.Context, req *apiserver.Request) (any, error) {
	var in userRequest
	if err := req.Decode(&in); err != nil {
		return nil, err
	}
	if err := apiserver.Require("UserId", in.UserId); err != nil {
		return nil, err
	}
	return s.forUser(ctx, req, in.UserId, func(now time.Time, cs cause) (any, []closeOrder, *apiserver.Error) {
		return nil, nil, s.model.stopPush(now, cs, in.UserId)
	})
}

func checkIP(ip string) *apiserver.Error {
	if net.ParseIP(ip) == nil {
		return apiserver.Errorf(car.CodeInvalidParameterValue, "the parameter `UserIp` must be an IPv4 or IPv6 address, got %q", clip(ip))
	}
	return nil
}
