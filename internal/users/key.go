package users

// KeyRule names users' records. A person is one record per app and
// platform, or with link_by unionid one record across the mini-program and
// web logins of one WeChat open platform account, so that claims, ended
// sessions and events follow them across surfaces.
type KeyRule struct {
	// PrimaryApp is the handler's own WeChat mini-program app id, whose
	// users are keyed by bare openid as before other platforms existed, so
	// records stored then stay theirs.
	PrimaryApp string
	// LinkByUnionID keys a user by unionid whenever a login gives one.
	LinkByUnionID bool
}

// unionPrefix starts the key of a user known by unionid.
const unionPrefix = "unionid+"

// Key names the record of the user openid of appID on platform ("" is
// WeChat), who has unionid ("" when the platform gave none).
func (k KeyRule) Key(platform, appID, openid, unionid string) string {
	if k.LinkByUnionID && unionid != "" && (platform == "" || platform == "wechat") {
		return unionPrefix + unionid
	}
	return k.Local(platform, appID, openid)
}

// Local names openid of appID on platform without linking: the key of a
// user who has no unionid, and of the session key, which belongs to one app.
func (k KeyRule) Local(platform, appID, openid string) string {
	if (platform == "" || platform == "wechat") && (appID == "" || appID == k.PrimaryApp) {
		return openid
	}
	if platform == "" {
		platform = "wechat"
	}
	return platform + "+" + appID + "+" + openid
}

// UnionKey names the record of the person with unionid under link_by
// unionid.
func UnionKey(unionid string) string { return unionPrefix + unionid }
