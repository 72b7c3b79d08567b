package wxmock

import (
	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	httpcaddyfile.RegisterHandlerDirective("wxmock", parseCaddyfile)
	// Ordered by the plugin so that users need no global order option.
	httpcaddyfile.RegisterDirectiveOrder("wxmock", httpcaddyfile.Before, "respond")
}

// parseCaddyfile sets up the handler from Caddyfile tokens.
func parseCaddyfile(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	m := new(Handler)
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return m, err
}

// UnmarshalCaddyfile sets up the handler from Caddyfile tokens. Syntax:
//
//	wxmock [<matcher>] {
//	    app_id           <appid>
//	    app_secret       <secret>
//	    access_token_ttl <duration>
//	    any_code         <user>
//	    platform <name> { ... }   # repeatable: see unmarshalPlatform
//	    web_app  <app_id> [<app_secret> [<domain>]]   # repeatable: see WebApp
//	}
//
// The block is optional. any_code is for WeChat DevTools only: see
// Handler.AnyCode.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // consume directive name
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "app_id":
			if !d.AllArgs(&h.AppID) {
				return d.ArgErr()
			}
		case "app_secret":
			if !d.AllArgs(&h.AppSecret) {
				return d.ArgErr()
			}
		case "access_token_ttl":
			var s string
			if !d.AllArgs(&s) {
				return d.ArgErr()
			}
			dur, err := caddy.ParseDuration(s)
			if err != nil {
				return d.Errf("bad access_token_ttl %q: %v", s, err)
			}
			h.AccessTokenTTL = caddy.Duration(dur)
		case "any_code":
			if !d.AllArgs(&h.AnyCode) {
				return d.ArgErr()
			}
			if !validUserName(h.AnyCode) {
				return d.Errf("bad any_code user %q: letters, digits, '_', '-' and '.', at most %d", h.AnyCode, maxUserName)
			}
		case "platform":
			if err := h.unmarshalPlatform(d); err != nil {
				return err
			}
		case "web_app":
			if err := h.unmarshalWebApp(d); err != nil {
				return err
			}
		default:
			return d.Errf("unrecognized subdirective %q", d.Val())
		}
	}
	return nil
}
