// caddy-wxauth's mini-program client: one core and an adapter per framework.

export * from './core.js'
export * from './wx.js'
export * from './uni.js'
export * from './taro.js'
