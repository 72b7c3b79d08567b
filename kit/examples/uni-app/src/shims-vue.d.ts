// .vue files, for the TypeScript check of the .ts sources (uni-app's compiler builds them).
declare module '*.vue' {
  import type { DefineComponent } from 'vue'
  const component: DefineComponent<object, object, unknown>
  export default component
}
