package wxauth

import (
	"context"
	"fmt"

	"github.com/caddyserver/caddy/v2"
	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// setRedisLogger sends go-redis's own notes (a failed dial, a sentinel
// switching masters), which it writes to stderr in plain text by default,
// through Caddy's logs. go-redis has one logger per process.
func setRedisLogger() { redis.SetLogger(redisLogger{}) }

// redisLogger hands go-redis's notes to Caddy's logger, at debug level:
// wxauth reports the store errors that matter itself.
type redisLogger struct{}

func (redisLogger) Printf(_ context.Context, format string, v ...any) {
	if c := caddy.Log().Named("wxauth.redis").Check(zapcore.DebugLevel, "go-redis"); c != nil {
		c.Write(zap.String("note", fmt.Sprintf(format, v...)))
	}
}
