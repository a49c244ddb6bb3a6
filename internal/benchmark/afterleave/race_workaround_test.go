package afterleave

// Pins GOMAXPROCS to 1 under -race: see internal/onepunderrace.
import _ "github.com/tcconcurrency/sdk-go/internal/onepunderrace"
