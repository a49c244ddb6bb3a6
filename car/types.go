package car

import (
	"net"
	"strings"
)

// Values of CreateSessionInput.RunMode.
const (
	// RunModeDefault keeps the application only while a client is connected.
	RunModeDefault = ""
	// RunModeRunWithoutClient keeps the application running with no client.
	RunModeRunWithoutClient = "RunWithoutClient"
)

// Values of CreateSessionInput.Role, for multiplayer sessions.
const (
	RolePlayer = "Player" // can control
	RoleViewer = "Viewer" // watches only
)

// Values of DescribeConcurrentCountInput.ApplicationCategory.
const (
	ApplicationCategoryDesktop = "DESKTOP"
	ApplicationCategoryMobile  = "MOBILE"
)

// ApplyConcurrentInput locks a concurrency for a user.
type ApplyConcurrentInput struct {
	// UserId is the caller's unique user id, opaque to CAR. Keep it the
	// same across reconnects: that is how the user gets the same
	// concurrency back. Required.
	UserId string `json:"UserId"` //nolint:revive // the API's spelling
	// UserIp is the user's public IP, used for nearest-region scheduling.
	// Required.
	UserIp string `json:"UserIp"` //nolint:revive
	// ProjectId is the project, e.g. "cap-abcdefgh". Required.
	ProjectId string `json:"ProjectId"` //nolint:revive
	// ApplicationVersionId asks for a version other than the current one.
	ApplicationVersionId string `json:"ApplicationVersionId,omitempty"` //nolint:revive
	// ApplicationId picks the application of a shared project.
	ApplicationId string `json:"ApplicationId,omitempty"` //nolint:revive
}

func (in *ApplyConcurrentInput) validate() (string, string) {
	if f, r := requireUser(in.UserId, in.UserIp); f != "" {
		return f, r
	}
	if in.ProjectId == "" {
		return "ProjectId", "is required"
	}
	return "", ""
}

// ApplyConcurrentOutput is the reply to ApplyConcurrent.
type ApplyConcurrentOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// CreateSessionInput creates the session on a locked concurrency.
type CreateSessionInput struct {
	UserId string `json:"UserId"` //nolint:revive // Required; as in ApplyConcurrent.
	UserIp string `json:"UserIp"` //nolint:revive // Required; as in ApplyConcurrent.
	// ClientSession is the client's TCGSDK.getClientSession() blob. It may
	// be empty with RunModeRunWithoutClient.
	ClientSession string `json:"ClientSession,omitempty"`
	// RunMode is RunModeDefault or RunModeRunWithoutClient.
	RunMode string `json:"RunMode,omitempty"`
	// ApplicationParameters are launch arguments appended to the console's.
	ApplicationParameters string `json:"ApplicationParameters,omitempty"`
	// HostUserId is the room owner's UserId in multiplayer mode (the owner
	// passes its own).
	HostUserId string `json:"HostUserId,omitempty"` //nolint:revive
	// Role is RolePlayer or RoleViewer in multiplayer mode.
	Role string `json:"Role,omitempty"`
}

func (in *CreateSessionInput) validate() (string, string) {
	if f, r := requireUser(in.UserId, in.UserIp); f != "" {
		return f, r
	}
	switch in.RunMode {
	case RunModeDefault, RunModeRunWithoutClient:
	default:
		return "RunMode", "must be empty or RunWithoutClient"
	}
	switch in.Role {
	case "":
	case RolePlayer, RoleViewer:
		if in.HostUserId == "" {
			return "HostUserId", "is required when Role is set (multiplayer)"
		}
	default:
		return "Role", "must be Player or Viewer"
	}
	return "", ""
}

// CreateSessionOutput carries the ServerSession for the client.
type CreateSessionOutput struct {
	// ServerSession goes to the client's TCGSDK.start().
	ServerSession string `json:"ServerSession"`
	RequestId     string `json:"RequestId"` //nolint:revive
}

// DestroySessionInput ends a user's session.
type DestroySessionInput struct {
	UserId string `json:"UserId"` //nolint:revive // Required.
}

func (in *DestroySessionInput) validate() (string, string) { return requireID(in.UserId) }

// DestroySessionOutput is the reply to DestroySession.
type DestroySessionOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// DescribeConcurrentCountInput selects what to count; all fields are
// optional.
type DescribeConcurrentCountInput struct {
	ProjectId string `json:"ProjectId,omitempty"` //nolint:revive
	// ApplicationCategory is ApplicationCategoryDesktop or
	// ApplicationCategoryMobile.
	ApplicationCategory string `json:"ApplicationCategory,omitempty"`
}

func (in *DescribeConcurrentCountInput) validate() (string, string) {
	switch in.ApplicationCategory {
	case "", ApplicationCategoryDesktop, ApplicationCategoryMobile:
		return "", ""
	}
	return "ApplicationCategory", "must be DESKTOP or MOBILE"
}

// DescribeConcurrentCountOutput counts concurrencies.
type DescribeConcurrentCountOutput struct {
	// Total is the number of concurrencies.
	Total uint64 `json:"Total"`
	// Running counts every concurrency that is not idle: prelaunching,
	// locked, connected, waiting for a reconnect, cleaning up.
	Running   uint64 `json:"Running"`
	RequestId string `json:"RequestId"` //nolint:revive
}

// StartPublishStreamInput starts a push to Tencent CSS.
type StartPublishStreamInput struct {
	// UserId is the user, and the stream id. Required.
	UserId string `json:"UserId"` //nolint:revive
	// PublishStreamArgs are extra query arguments, e.g. "bar=1&foo=2".
	PublishStreamArgs string `json:"PublishStreamArgs,omitempty"`
}

func (in *StartPublishStreamInput) validate() (string, string) { return requireID(in.UserId) }

// StartPublishStreamOutput is the reply to StartPublishStream.
type StartPublishStreamOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// StartPublishStreamWithURLInput starts a push to an RTMP URL.
type StartPublishStreamWithURLInput struct {
	UserId string `json:"UserId"` //nolint:revive // Required.
	// PublishStreamURL is an rtmp:// URL. Required.
	PublishStreamURL string `json:"PublishStreamURL"`
}

func (in *StartPublishStreamWithURLInput) validate() (string, string) {
	if f, r := requireID(in.UserId); f != "" {
		return f, r
	}
	if in.PublishStreamURL == "" {
		return "PublishStreamURL", "is required"
	}
	if !strings.HasPrefix(in.PublishStreamURL, "rtmp://") {
		return "PublishStreamURL", "must be an rtmp:// URL (only RTMP is supported)"
	}
	return "", ""
}

// StartPublishStreamWithURLOutput is the reply to StartPublishStreamWithURL.
type StartPublishStreamWithURLOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

// StopPublishStreamInput stops a push.
type StopPublishStreamInput struct {
	UserId string `json:"UserId"` //nolint:revive // Required.
}

func (in *StopPublishStreamInput) validate() (string, string) { return requireID(in.UserId) }

// StopPublishStreamOutput is the reply to StopPublishStream.
type StopPublishStreamOutput struct {
	RequestId string `json:"RequestId"` //nolint:revive
}

func requireID(userID string) (string, string) {
	if userID == "" {
		return "UserId", "is required"
	}
	return "", ""
}

func requireUser(userID, userIP string) (string, string) {
	if userID == "" {
		return "UserId", "is required"
	}
	if userIP == "" {
		return "UserIp", "is required"
	}
	if net.ParseIP(userIP) == nil {
		return "UserIp", "must be an IPv4 or IPv6 address"
	}
	return "", ""
}
