// `released`: the daemon's executable; everything it does is in ReleaseDaemon.
import ReleaseDaemon

await DaemonMain.main()
