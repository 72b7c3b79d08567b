package platforms

import (
	"github.com/wxauth/caddy-wxauth/internal/login"
	"github.com/wxauth/caddy-wxauth/internal/provider/alipay"
	"github.com/wxauth/caddy-wxauth/internal/provider/baidu"
	"github.com/wxauth/caddy-wxauth/internal/provider/douyin"
	"github.com/wxauth/caddy-wxauth/internal/provider/kuaishou"
	"github.com/wxauth/caddy-wxauth/internal/provider/qq"
)

// builders makes each platform's provider from its block.
var builders = map[string]func(login.PlatformConfig) (login.Provider, error){
	alipay.Platform:   func(c login.PlatformConfig) (login.Provider, error) { return alipay.New(c) },
	qq.Platform:       func(c login.PlatformConfig) (login.Provider, error) { return qq.New(c) },
	douyin.Platform:   func(c login.PlatformConfig) (login.Provider, error) { return douyin.New(c) },
	baidu.Platform:    func(c login.PlatformConfig) (login.Provider, error) { return baidu.New(c) },
	kuaishou.Platform: func(c login.PlatformConfig) (login.Provider, error) { return kuaishou.New(c) },
}
