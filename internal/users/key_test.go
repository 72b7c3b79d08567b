package users

import "testing"

func TestKeyRule(t *testing.T) {
	plain := KeyRule{PrimaryApp: "wxmp"}
	linked := KeyRule{PrimaryApp: "wxmp", LinkByUnionID: true}
	cases := []struct {
		rule                           KeyRule
		platform, app, openid, unionid string
		want                           string
	}{
		{plain, "", "wxmp", "o1", "u1", "o1"},
		{plain, "wechat", "", "o1", "", "o1"},
		{plain, "wechat", "wxweb", "o2", "u1", "wechat+wxweb+o2"},
		{plain, "douyin", "tt1", "o3", "u3", "douyin+tt1+o3"},
		{linked, "wechat", "wxmp", "o1", "u1", "unionid+u1"},
		{linked, "wechat", "wxweb", "o2", "u1", "unionid+u1"},
		{linked, "wechat", "wxweb", "o2", "", "wechat+wxweb+o2"},
		{linked, "wechat", "wxmp", "o1", "", "o1"},
		// A unionid of another platform names another person space.
		{linked, "qq", "1101", "o4", "u1", "qq+1101+o4"},
	}
	for _, c := range cases {
		if got := c.rule.Key(c.platform, c.app, c.openid, c.unionid); got != c.want {
			t.Errorf("%+v.Key(%q, %q, %q, %q) = %q, want %q", c.rule, c.platform, c.app, c.openid, c.unionid, got, c.want)
		}
	}
}
