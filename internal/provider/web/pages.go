package web

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
)

// page is one of the callback's answers to a browser: what went wrong, in
// Chinese and English.
type page struct {
	status         int
	titleZH, title string
	textZH, text   string
}

// The callback's pages.
var (
	deniedPage = page{http.StatusForbidden,
		"未登录", "Not logged in",
		"你没有同意微信授权，因此没有登录。", "The WeChat authorization was declined, so you are not logged in."}
	badStatePage = page{http.StatusBadRequest,
		"登录链接无效", "Invalid login link",
		"这个登录链接无效、已过期或已经用过（例如在另一个浏览器中打开，或者重复打开）。请重新登录。",
		"This login link is invalid, has expired or was already used (for example, opened in another browser, or twice). Please log in again."}
	snapshotPage = page{http.StatusForbidden,
		"请打开完整页面", "Open the full page",
		"这是微信的快照页，无法登录。请点击“使用完整服务”打开完整页面后再登录。",
		"This is WeChat's snapshot of the page, where you cannot log in. Tap “使用完整服务” (use the full service) to open the full page, then log in."}
)

// failedPage is the page of a login that WeChat, the store or the app
// refused: the status and the contract's message of the error, which holds
// no secret.
func failedPage(status int, message string) page {
	return page{status, "登录失败", "Login failed", "登录没有完成。", "The login did not complete: " + message}
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.TitleZH}} · {{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32em;margin:3em auto;padding:0 1em;line-height:1.5;color:#222}h1{font-size:1.3em}a{color:#07c160}</style>
</head>
<body>
<h1>{{.TitleZH}}</h1>
<p>{{.TextZH}}</p>
<h1 lang="en">{{.Title}}</h1>
<p lang="en">{{.Text}}</p>
<p><a href="{{.Login}}">重新登录 · Log in again</a></p>
</body>
</html>
`))

// writePage answers p, with a link back to the login that keeps next.
func (rt *Routes) writePage(w http.ResponseWriter, p page, next string) {
	login := rt.app.loginPath()
	if next != "" && next != "/" {
		login += "?" + url.Values{"next": {next}}.Encode()
	}
	var b bytes.Buffer
	err := pageTemplate.Execute(&b, struct {
		TitleZH, Title, TextZH, Text string
		Login                        string
	}{p.titleZH, p.title, p.textZH, p.text, login})
	if err != nil {
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.status)
	_, _ = w.Write(b.Bytes())
}
