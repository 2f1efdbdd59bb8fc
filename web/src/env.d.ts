declare module '*.css';
// hls.js's light build (no subtitles, alternate audio or DRM; LL-HLS included) has the full build's API.
declare module 'hls.js/light' {
  import Hls from 'hls.js';
  export default Hls;
}
