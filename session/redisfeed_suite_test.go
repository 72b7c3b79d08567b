package session_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wxauth/caddy-wxauth/internal/redistest"
	"github.com/wxauth/caddy-wxauth/session"
	"github.com/wxauth/caddy-wxauth/session/feedtest"
)

func TestRedisFeedSuite(t *testing.T) {
	url := redistest.Start(t)
	n := 0
	feedtest.Run(t, func(t *testing.T) (session.Feed, session.Feed) {
		n++ // a stream per subtest
		key := "feed-" + string(rune('a'+n))
		mk := func() session.Feed {
			opts, err := redis.ParseURL(url)
			if err != nil {
				t.Fatal(err)
			}
			c := redis.NewClient(opts)
			t.Cleanup(func() { c.Close() })
			return session.NewRedisFeed(c, key, time.Hour, true)
		}
		return mk(), mk()
	})
}
