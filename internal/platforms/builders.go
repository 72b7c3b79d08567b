package platforms

import "github.com/wxauth/caddy-wxauth/internal/login"

// builders makes each platform's provider from its block.
var builders = map[string]func(login.PlatformConfig) (login.Provider, error){}
