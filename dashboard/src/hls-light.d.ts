// hls.js's light build (no subtitles, alternate audio or DRM: replay and
// recordings need none) has the same API as the full one.
declare module "hls.js/light" {
  export { default } from "hls.js";
}
