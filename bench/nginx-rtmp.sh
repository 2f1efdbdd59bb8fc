# Sourced by the bench scripts that compare with nginx-rtmp: starts nginx with the RTMP module and
# HLS on (2 s fragments, a 16 s playlist, as olive's window) in the folder $work, listening on
# $RTMP; its master's pid is in $work/nginx.pid.
start_nginx_rtmp() {
    rm -rf "$work/hls" && mkdir -p "$work/hls"
    cat >"$work/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 4096; }
rtmp {
    server {
        listen $RTMP;
        chunk_size 4096;
        application live {
            live on;
            record off;
            hls on;
            hls_path $work/hls;
            hls_fragment 2s;
            hls_playlist_length 16s;
        }
    }
}
CONF
    nginx -c "$work/nginx.conf" -p "$work"
    sleep 0.5
}
